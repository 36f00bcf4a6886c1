from mopsbot.cli import main

main()
