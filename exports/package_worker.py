"""A worker process of publication: writes the packages of some members of a release.

Started by ``exports.packages`` as ``python -m exports.package_worker``: it imports what it
needs, then reads its job from standard input, ``{"plan": ..., "codes": [...], "parent": <the
step's pid>}``. Input that ends with no job (a worker started ahead and not needed, or whose
step died before giving it one): exit status 0, nothing written.
Exit status 0 when every package was written and checked; 3 with the message on standard error
when a package names another member (a PublieksdataError, whose messages are ours); 4 when the
step's process that started it is gone (killed with its run: the worker stops before its next
package instead of writing into a release folder the next run removes); 1 with only the error's
class otherwise (another library's message could quote a value).
"""

from __future__ import annotations

import json
import sys

PARENT_GONE = 4  # the step's process died: the worker stopped before its next package


def main() -> int:
    from exports.packages import _NAME_CHECK_FAILED, ParentGone, _Plan, write_packages_of
    from publieksdata.settings import PublieksdataError

    try:
        text = sys.stdin.buffer.read().decode("utf-8")
        if not text:
            return 0  # no job came: nothing to write
        job = json.loads(text)
        write_packages_of(_Plan.from_json(job["plan"]), job["codes"], job.get("parent"))
    except ParentGone:
        return PARENT_GONE  # nobody waits for this worker any more
    except PublieksdataError as exc:
        print(str(exc), file=sys.stderr)
        return _NAME_CHECK_FAILED
    except Exception as exc:  # noqa: BLE001 - reported by class only, never by message
        print(type(exc).__name__, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
