"""Table custom resource: ClickHouse tables reconciled through weir.store.migrate."""
