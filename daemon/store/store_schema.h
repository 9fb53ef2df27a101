/* The migrations built into the binary from schema/ (generated table). */
#ifndef MOAT_STORE_SCHEMA_H
#define MOAT_STORE_SCHEMA_H

struct store_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct store_migration store_migrations[];
extern const int store_migration_count;

#endif
