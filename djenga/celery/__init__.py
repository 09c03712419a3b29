"""Celery side of djenga: detail tasks, the redisd result backend and detailed results."""
