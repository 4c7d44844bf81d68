"""`archive`: many videos on a cluster, each cut into units that decode, matte, smooth and encode on the
node where they run; a job directory with a ledger so a rerun resumes; parts joined into the same
deliverables `process` writes.

Modules: ``inputs`` (what the inputs name), ``units`` (cutting videos at keyframes), ``ledger`` (the job
directory), ``processor`` (one unit, on a worker), ``join`` (parts into the deliverable, no re-encode),
``status`` (the summary of a job), ``job`` (the driver).
"""
