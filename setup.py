"""Build of the cachee extension.

`pip install .` compiles cachee._cachee from python/cachee/_ext/*.c (the
module is _ext/module.c) and the L0 engine (core/l0/*.c) with hidden symbol
visibility and -Werror.  Environment:

  CACHEE_SANITIZE=1   build with AddressSanitizer and UBSan (run Python with
                      LD_PRELOAD=$(gcc -print-file-name=libasan.so))

  CACHEE_NO_GO=1      build without libcachee.so (no Go needed; L0 only)
  GO=/path/to/go      the Go toolchain to use (default: `go` on PATH)

libcachee.so, the Go core (the tiers beyond L0), is built by
BuildExt.build_native_libraries with `go build -buildmode=c-shared` into the
package directory, beside the extension, which dlopens it lazily.  Without Go
the package builds anyway (with a warning) and works with L0 only.
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
        """Build libcachee.so (the Go core: the tiers beyond L0) into the
        package, beside the extension: build_lib/cachee/ (wheels), or
        python/cachee/ with --inplace.

        Without a Go toolchain (or with CACHEE_NO_GO=1) the package is built
        without it and a warning says so: L0 works, and a cache configured
        with l1_bytes raises TiersUnavailableError at its first tier use.
        A failing `go build` is an error (CACHEE_NO_GO=1 skips it)."""
        if self.inplace:
            out_dir = os.path.join(HERE, "python", "cachee")
        else:
            out_dir = os.path.join(self.build_lib, "cachee")
        target = os.path.join(out_dir, "libcachee.so")
        if os.environ.get("CACHEE_NO_GO", "") not in ("", "0"):
            self.warn_no_go("CACHEE_NO_GO is set")
            return
        go = shutil.which(os.environ.get("GO", "go"))
        if go is None:
            self.warn_no_go("no Go toolchain on PATH (`go`)")
            return
        if not os.path.isfile(os.path.join(HERE, "capi", "main.go")):
            self.warn_no_go("the Go sources (capi/, core/, go.mod) are not in this tree")
            return
        os.makedirs(out_dir, exist_ok=True)
        env = dict(os.environ, CGO_ENABLED="1")
        cmd = [go, "build", "-buildmode=c-shared", "-trimpath", "-o", target, "./capi"]
        print("building libcachee.so: " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd, cwd=HERE, env=env)
        # go writes the cgo header beside the library; the package ships
        # include/cachee.h's contract, not that.
        header = os.path.splitext(target)[0] + ".h"
        if os.path.exists(header):
            os.remove(header)
        if r.returncode != 0:
            sys.exit("cachee: `%s` failed (exit %d).  Fix the Go build, or set "
                     "CACHEE_NO_GO=1 to build cachee without its tiers (L0 only)."
                     % (" ".join(cmd), r.returncode))

    @staticmethod
    def warn_no_go(why):
        bar = "*" * 72
        sys.stderr.write(
            "\n%s\ncachee: building WITHOUT libcachee.so (the Go core) because %s.\n"
            "The shared-memory cache (L0) works.  The tiers beyond it do not:\n"
            "SharedCache(..., l1_bytes=N) raises cachee.TiersUnavailableError at its\n"
            "first tier use.  To get them, install Go 1.22+ (https://go.dev/dl/) and\n"
            "reinstall cachee.\n%s\n\n" % (bar, why, bar))


cflags = ["-std=gnu11", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra",
          "-Werror", "-Wno-missing-field-initializers", "-fno-strict-aliasing"]
ldflags = ["-lpthread", "-ldl"]
if sanitize():
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
           "-fno-sanitize-recover=undefined"]
    cflags = [f for f in cflags if f != "-O2"] + ["-O1", "-g"] + san
    ldflags += san

sources = (sorted(rel(p) for p in glob.glob(os.path.join(HERE, "python", "cachee", "_ext", "*.c")))
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
