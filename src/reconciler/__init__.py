"""The q2q-registry application: git source, planning, reconcile passes and the CLI."""
