"""Tag sentences with a small scikit-learn pipeline; reads text from the arguments."""
import sys

from sklearn.feature_extraction.text import TfidfVectorizer


def main(texts: list[str]) -> None:
    vec = TfidfVectorizer().fit(texts or ["empty"])
    for t in texts:
        print(f"{len(vec.transform([t]).nonzero()[1]):3d} terms | {t}")


if __name__ == "__main__":
    main(sys.argv[1:])
