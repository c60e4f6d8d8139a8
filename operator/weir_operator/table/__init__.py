"""Table custom resource: ClickHouse tables reconciled through weir.store.schema."""
