"""Conversion of datafiles into NEO objects, metadata sections and datafiles (seed 000, types 1-7).

Two halves, in two processes:

- the **parse** (`parse.py`, `detect.py`, `hdf5_rules.py`, `converters/`) reads the uploaded bytes
  in a sandboxed child process (shared/sandbox) with no secret and no access to anything but the
  upload and a scratch folder, and writes a plan (`plan.py`) there;
- the **task** (`task.py`, `job.py`, `sandboxed.py`, `apply.py`, `archive_members.py`) runs in the
  files worker: it claims the datafile, runs the parse, creates what the plan says through the neo
  and metadata services as the uploader, and records the outcome.
"""
