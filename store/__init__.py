"""Persistence: the job ledger (SQLAlchemy + migrations) and the artifact store.

Used by activities (which write) and by client/ (which reads); imports only the domain.
"""
