import sys

from qcnn.cli import main

sys.exit(main())
