"""Thin tasks for images: pull, push, load, save, import, commit, export, remove, login.

Owner: helper C (see /work/notes/images.md). Each handler takes the Job and returns its result
dict; progress goes out through panel.events.publish.job_progress.
"""

IMAGE_HANDLERS: dict = {}
