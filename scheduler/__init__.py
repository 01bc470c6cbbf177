"""The scheduler side: ingestion, splitting, planning and dispatch of jobs."""
