"""Summarise a CSV of measurements per group: the kind of job a lab runs nightly."""
import argparse
import sys

import pandas as pd


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv", help="input CSV with columns group,value")
    parser.add_argument("--out", default="summary.csv", help="where to write the summary")
    args = parser.parse_args(argv)
    df = pd.read_csv(args.csv)
    summary = df.groupby("group")["value"].agg(["count", "mean", "std"])
    summary.to_csv(args.out)
    print(summary.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
