from odvgkit.cli import main

main()
