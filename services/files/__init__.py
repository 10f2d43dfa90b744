"""The files service: datafiles, their stored bytes, the conversion worker and exports (issue #5)."""
