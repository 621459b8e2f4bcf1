"""A command in Python on Arcella: runs to completion, printing its
arguments. Built against the arcella:platform/command world (wit/)."""

import sys

from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        print(f"hello from python, args {sys.argv}")
