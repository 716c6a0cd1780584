"""One package per article, all of the same shape (``docs/architecture.md``): ``config.py``,
``model.py``, ``data.py``, ``train.py``, ``evaluate.py``, ``published.py``; the interface is
``kexue.article``'s Protocols."""
