"""The hub side of coursehub: the ``coursehub.platform`` package (mapped in pyproject.toml).

The folder is named ``platform``, like the standard-library module. A process that has the checkout
itself on ``sys.path`` (``python -c`` or ``python -m`` started in it) would find this folder first for
``import platform``; in that case this file puts the standard library's module in its place, so the
folder is never seen under any name but ``coursehub.platform``.
"""

if __name__ == "platform":
    import importlib.util as _util
    import os as _os
    import sys as _sys
    import sysconfig as _sysconfig

    _spec = _util.spec_from_file_location("platform", _os.path.join(_sysconfig.get_path("stdlib"), "platform.py"))
    _stdlib_platform = _util.module_from_spec(_spec)
    _sys.modules["platform"] = _stdlib_platform
    _spec.loader.exec_module(_stdlib_platform)
