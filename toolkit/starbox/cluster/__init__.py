"""Control of the embedded PostgreSQL cluster (initdb, start, stop, status)."""

from starbox.cluster.control import Cluster, ClusterStatus

__all__ = ["Cluster", "ClusterStatus"]
