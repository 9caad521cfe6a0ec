"""Course textbooks: built to HTML with Jupyter Book, served by the `textbooks` hub service, and
opened page by page as live notebooks in students' servers through nbgitpuller.

    links.py          launch URLs (`textbook_launch_url`), the content repository's address
    repo.py           the local content repository kept per course (a bare git repo)
    build.py          the Jupyter Book build (`coursehub textbook build COURSE`)
    sphinx_launch.py  the Sphinx extension that puts the launch link on every page
    service.py        the hub service serving built books at /services/textbooks/<course>/
"""

from .links import PageNotFound, textbook_launch_url

__all__ = ["PageNotFound", "textbook_launch_url"]
