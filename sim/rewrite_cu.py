#!/usr/bin/env python3
"""cudasim's source rewrite: the two pieces of CUDA syntax that are not C++ (docs/cudasim.md).

    kernel<<<grid, block, smem, stream>>>(args)  ->  ::fnsim::launch(kernel, grid, block, smem, stream)(args)
    extern __shared__ T name[];                  ->  T* name = static_cast<T*>(::fnsim::dynamic_shared());

Usage: rewrite_cu.py IN.cu OUT.cpp. The output starts with a #line directive, and each rewrite keeps the
line count, so that compiler messages and __FILE__ / __LINE__ name the .cu file's own lines.
"""
import re
import sys

NAME_CHARS = re.compile(r"[A-Za-z0-9_:]")


def kernel_start(src, end):
    """Index where the kernel expression ending at src[end] (exclusive) starts: an identifier, possibly
    qualified, possibly followed by a template argument list."""
    i = end
    while True:
        if i > 0 and src[i - 1] == ">":  # template arguments: walk back over a balanced <...>
            depth = 0
            while i > 0:
                i -= 1
                if src[i] == ">":
                    depth += 1
                elif src[i] == "<":
                    depth -= 1
                    if depth == 0:
                        break
        j = i
        while j > 0 and NAME_CHARS.match(src[j - 1]):
            j -= 1
        if j == i:
            raise SystemExit(f"rewrite_cu.py: no kernel name before '<<<' at offset {end}")
        return j


def rewrite(src):
    out, pos = [], 0
    while True:
        a = src.find("<<<", pos)
        if a < 0:
            out.append(src[pos:])
            break
        b = src.find(">>>", a)
        if b < 0:
            raise SystemExit("rewrite_cu.py: '<<<' without '>>>'")
        k = kernel_start(src, a)
        out.append(src[pos:k])
        out.append(f"::fnsim::launch({src[k:a]}, {src[a + 3:b]})")
        pos = b + 3
    text = "".join(out)
    return re.sub(r"extern\s+__shared__\s+([\w\s]+?)\s+(\w+)\s*\[\s*\]\s*;",
                  r"\1* \2 = static_cast<\1*>(::fnsim::dynamic_shared());", text)


def main():
    src_path, out_path = sys.argv[1], sys.argv[2]
    with open(src_path) as f:
        src = f.read()
    with open(out_path, "w") as f:
        f.write(f'#line 1 "{src_path}"\n')
        f.write(rewrite(src))


if __name__ == "__main__":
    main()
