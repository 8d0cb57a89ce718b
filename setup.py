"""Build of the cachee extension.

`pip install .` compiles cachee._cachee from python/cachee/_cachee.c,
python/cachee/_ext/*.c and the L0 engine (core/l0/*.c) with hidden symbol
visibility and -Werror.  Environment:

  CACHEE_SANITIZE=1   build with AddressSanitizer and UBSan (run Python with
                      LD_PRELOAD=$(gcc -print-file-name=libasan.so))

Native libraries beyond the extension (libcachee.so from the Go core) are
built by BuildExt.build_native_libraries, one more step of the same command.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def rel(*parts):
    return os.path.relpath(os.path.join(HERE, *parts), HERE)


def sanitize():
    return os.environ.get("CACHEE_SANITIZE", "") not in ("", "0")


class BuildExt(build_ext):
    """build_ext that checks prerequisites first and can build native
    libraries to ship inside the package."""

    def run(self):
        self.check_prerequisites()
        import numpy

        for ext in self.extensions:
            ext.include_dirs.append(numpy.get_include())
        self.build_native_libraries()
        super().run()

    def check_prerequisites(self):
        cc = os.environ.get("CC", "gcc").split()[0]
        problems = []
        if shutil.which(cc) is None:
            problems.append("a C compiler (%s)" % cc)
        else:
            with tempfile.TemporaryDirectory() as d:
                src = os.path.join(d, "probe.c")
                with open(src, "w") as f:
                    f.write("#define XXH_INLINE_ALL\n#include <xxhash.h>\n"
                            "int main(void){return (int)XXH3_64bits(\"\",0)&0;}\n")
                r = subprocess.run([cc, src, "-o", os.path.join(d, "probe")],
                                   capture_output=True)
                if r.returncode != 0:
                    problems.append("the xxHash headers (xxhash.h)")
        if problems:
            sys.exit(
                "cachee cannot be built: missing %s.\n"
                "On Debian/Ubuntu: sudo apt-get install -y gcc libxxhash-dev\n"
                "On Fedora: sudo dnf install -y gcc xxhash-devel"
                % " and ".join(problems))

    def build_native_libraries(self):
        """Hook for libraries shipped in the package (none yet: the Go core
        adds libcachee.so here)."""


cflags = ["-std=gnu11", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra",
          "-Werror", "-Wno-missing-field-initializers", "-fno-strict-aliasing"]
ldflags = ["-lpthread"]
if sanitize():
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
           "-fno-sanitize-recover=undefined"]
    cflags = [f for f in cflags if f != "-O2"] + ["-O1", "-g"] + san
    ldflags += san

sources = ([rel("python", "cachee", "_cachee.c")]
           + sorted(rel(p) for p in glob.glob(os.path.join(HERE, "python", "cachee", "_ext", "*.c")))
           + sorted(rel(p) for p in glob.glob(os.path.join(HERE, "core", "l0", "*.c"))))

setup(
    ext_modules=[Extension(
        "cachee._cachee",
        sources=sources,
        include_dirs=[rel("include"), rel("core", "l0"), rel("python", "cachee", "_ext")],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
        depends=glob.glob(os.path.join(HERE, "include", "*.h"))
        + glob.glob(os.path.join(HERE, "core", "l0", "*.h"))
        + glob.glob(os.path.join(HERE, "python", "cachee", "_ext", "*.h")),
    )],
    cmdclass={"build_ext": BuildExt},
)
