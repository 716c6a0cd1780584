"""kexue: reference reproductions of eight 2018 articles from Su Jianlin's blog (kexue.fm)."""

__version__ = "0.1.0"
