from frugalai.cli import main

main()
