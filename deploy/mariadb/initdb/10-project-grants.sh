#!/bin/bash
# Run once by the mariadb image's entrypoint on a new volume (sourced, so docker_process_sql
# is defined): the project's user owns every database named after the project's database,
# as in the local stack, so tests can create `omc_test_…` databases.
docker_process_sql --database=mysql <<<"GRANT ALL PRIVILEGES ON \`${MARIADB_DATABASE}%\`.* TO '${MARIADB_USER}'@'%';"
