from simulator.cli import target_command

if __name__ == "__main__":
    target_command(prog_name="convsim target")
