from modelkeep.entrypoints.cli import main

main()
