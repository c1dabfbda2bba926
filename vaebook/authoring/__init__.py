"""Authoring tools for the course's repository, not used by the chapters.

- ``python -m vaebook.authoring.book``: the repository URL behind the Colab links and every chapter's
  setup cell (``set-repository``, ``check``), the setup cell itself (``bootstrap``), and the form
  chapters are committed in (``normalize``).
- ``python -m vaebook.authoring.assign``: student versions of the chapters, the student book, and
  the sources that nbgrader and otter-grader grade.
"""
