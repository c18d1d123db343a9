"""Peer-tracker runners; ``run_peer.py`` runs inside the peers' own venvs (numpy and the peer only)."""
