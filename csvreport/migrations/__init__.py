"""The numbered SQL migrations, applied in order by csvreport.db.migrate().

Each file is NNNN_what.sql and starts with a `-- Why:` comment; a shipped file never changes.
"""
