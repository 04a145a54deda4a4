"""Brewline Coffee's own CRM and order system: the demo company's in-house system of record.

Steward never imports this app at run time: it reaches it over HTTP through the generic REST connector, exactly as it
would reach a company's own API. It lives in this repository only so that the demo runs with nothing else installed.
"""
