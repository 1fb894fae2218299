from csvreport.cli import main

main()
