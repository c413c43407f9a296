"""The evidence pack for auditors: its signing key (signing.py), what goes in it
(contents.py) and the signed archive (pack.py)."""
