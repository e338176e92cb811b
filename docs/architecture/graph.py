"""Filters cmake --graphviz output down to mgx's modules and checks the layering.

Used by graph.sh: python3 graph.py SOURCE_DIR ALL.dot OUT.dot. Keeps the mgx libraries, the
controller modules and the mgx executable; external packages (PkgConfig::*, Threads, libm) are
kept as grey boxes; tests, benches, fuzzers and library file paths are dropped. Fails (exit 1)
on a cycle, an upward edge or a dead edge.
"""
import os
import re
import sys

# Layers, bottom first. A module may link only modules on a lower layer (or externals).
LAYERS = [
    ["mgx_market"],
    ["mgx_settlement", "mgx_meters", "mgx_strategy"],
    ["mgx_sim", "mgx_ctl_common"],
    ["mgx_ctl_bus", "mgx_ctl_db"],
    ["mgx_ctl_orders", "mgx_ctl_solana", "mgx_ctl_cluster"],
    ["mgx_ctl_settle", "mgx_ctl_agent", "mgx_ctl_meterd"],
    ["mgx_ctl_daemon", "mgx_ctl_witness", "mgx_ctl_web"],
    ["mgx_ctl_cli"],
    ["mgx"],
]
RANK = {t: i for i, layer in enumerate(LAYERS) for t in layer}
# Targets a library defines for its own tests only (its private headers, a test build variant):
# not modules, so not in the picture.
TEST_ONLY = re.compile(r"^mgx_\w+_(internal|narrow_key|hist)$")
EXTERNAL = re.compile(r"^(PkgConfig::(\w+)|Threads::Threads|.*/libm\.so.*|m)$")

# Where each library's sources and public headers live (for the dead-edge check).
LIB_DIRS = {
    "mgx_market": ["market/src", "market/include/mgx"],
    "mgx_settlement": ["settlement/src", "settlement/include/mgx"],
    "mgx_meters": ["meters/src", "meters/include/mgx"],
    "mgx_strategy": ["sim/strategy/src", "sim/strategy/include/mgx"],
    "mgx_sim": ["sim/src", "sim/include/mgx"],
}


def read_graph(path):
    text = open(path).read()
    names = dict(re.findall(r'"(node\d+)" \[ label = "([^"]+)"', text))
    edges = set()
    for a, b in re.findall(r'"(node\d+)" -> "(node\d+)"', text):
        edges.add((names[a], names[b]))
    return set(names.values()), edges


def external_name(n):
    m = EXTERNAL.match(n)
    if not m:
        return None
    if m.group(2):
        return m.group(2).lower()
    return "threads" if n.startswith("Threads") else "libm"


def files_of(src, target):
    if target.startswith("mgx_ctl_"):
        dirs = ["controller/" + target[len("mgx_ctl_"):]]
    elif target == "mgx":
        dirs = ["controller/cli"]
    else:
        dirs = LIB_DIRS.get(target, [])
    out = []
    for d in dirs:
        p = os.path.join(src, d)
        if os.path.isdir(p):
            out += [os.path.join(p, f) for f in os.listdir(p) if f.endswith((".c", ".h"))]
    return out


def product_libraries(src):
    """Every library the product's CMakeLists define (tests and benches have their own)."""
    libs = set()
    for top in ("market", "settlement", "meters", "sim", "controller"):
        for dirpath, _, files in os.walk(os.path.join(src, top)):
            if "CMakeLists.txt" in files:
                text = open(os.path.join(dirpath, "CMakeLists.txt")).read()
                libs.update(re.findall(r"^\s*add_library\((mgx_\w+)", text, re.M))
                libs.update("mgx_ctl_" + m for m in
                            re.findall(r"^\s*mgx_ctl_module\((\w+)", text, re.M))
    libs.discard("mgx_ctl_")  # the add_library inside the mgx_ctl_module function
    return {t for t in libs if not TEST_ONLY.match(t)}


def header_owner(src):
    owner = {}
    for lib, dirs in LIB_DIRS.items():
        p = os.path.join(src, dirs[1])
        for f in os.listdir(p):
            owner["mgx/" + f] = lib
    return owner


def used_modules(src, target, owner):
    used = set()
    for f in files_of(src, target):
        for inc in re.findall(r'#\s*include\s*"([^"]+)"', open(f).read()):
            if inc in owner:
                used.add(owner[inc])
            elif "/" in inc and os.path.isdir(os.path.join(src, "controller", inc.split("/")[0])):
                used.add("mgx_ctl_" + inc.split("/")[0])
    used.discard(target)
    return used


def main():
    src, all_dot, out_dot = sys.argv[1:4]
    nodes, edges = read_graph(all_dot)
    mods = {n for n in nodes if n in RANK}
    unknown = sorted(product_libraries(src) - set(RANK))
    ok = True
    if unknown:
        print("graph: targets missing from LAYERS in graph.py: " + ", ".join(unknown))
        ok = False
    mod_edges = {(a, b) for a, b in edges if a in mods and b in mods}
    ext_edges = set()
    for a, b in edges:
        if a in mods and external_name(b):
            ext_edges.add((a, external_name(b)))
    # upward (or sideways) edges
    for a, b in sorted(mod_edges):
        if RANK[b] >= RANK[a]:
            print(f"graph: upward edge {a} -> {b}")
            ok = False
    # cycles (none can survive the rank check, but say so plainly if one does)
    seen, stack = set(), set()

    def visit(n):
        nonlocal ok
        seen.add(n)
        stack.add(n)
        for a, b in mod_edges:
            if a == n:
                if b in stack:
                    print(f"graph: cycle through {a} -> {b}")
                    ok = False
                elif b not in seen:
                    visit(b)
        stack.discard(n)

    for n in sorted(mods):
        if n not in seen:
            visit(n)
    # dead edges: a module linking an mgx module none of its files includes
    owner = header_owner(src)
    for t in sorted(mods):
        if t == "mgx":
            continue
        used = used_modules(src, t, owner)
        for a, b in sorted(mod_edges):
            if a == t and b not in used:
                print(f"graph: dead edge {a} -> {b} (no file of {a} includes it)")
                ok = False
    # the picture: modules by layer, externals greyed
    lines = ['digraph "mgx" {', "  rankdir=BT;", "  newrank=true;",
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
             'fontname="Helvetica", fontsize=11];',
             '  edge [color="#4a5a78", arrowsize=0.7];']
    for i, layer in enumerate(LAYERS):
        present = [t for t in layer if t in mods]
        if present:
            lines.append("  { rank=same; " + " ".join(f'"{t}";' for t in present) + " }")
    for t in sorted(mods):
        label = t.replace("mgx_ctl_", "controller/") if t.startswith("mgx_ctl_") else t
        if t == "mgx":
            lines.append(f'  "{t}" [label="mgx (CLI)", shape=ellipse, fillcolor="#fdf1d6"];')
        elif t.startswith("mgx_ctl_"):
            lines.append(f'  "{t}" [label="{label}", fillcolor="#e8f4ea"];')
        else:
            lines.append(f'  "{t}" [label="{label}"];')
    for a, b in sorted(mod_edges):
        lines.append(f'  "{a}" -> "{b}";')
    exts = sorted({b for _, b in ext_edges})
    for e in exts:
        lines.append(f'  "ext:{e}" [label="{e}", shape=box, style="filled", '
                     'fillcolor="#f2f2f2", fontcolor="#888888", color="#cccccc", fontsize=9];')
    for a, b in sorted(ext_edges):
        lines.append(f'  "{a}" -> "ext:{b}" [color="#d0d0d0", arrowsize=0.5];')
    lines.append("}")
    with open(out_dot, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"graph: {len(mods)} modules, {len(mod_edges)} module edges, "
          f"{len(exts)} external packages" + ("" if ok else "; CHECKS FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
