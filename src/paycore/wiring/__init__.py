"""How each bounded context is put together in a process: ``mount_api`` adds its public routes
to an API process, ``start_worker`` starts its consumers (and internal routes) in a worker.

``paycore.bootstrap`` imports a module here only for the contexts a process serves, so a
process carries the code and memory of those contexts alone (the Rinha deployment's 350 MB
budget counts every megabyte).
"""
