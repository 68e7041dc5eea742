#!/usr/bin/env python3
"""Make the synthetic machine descriptions under tests/topologies/.

Each is an hwloc XML file: the CPU part comes from hwloc's synthetic
backend (lstopo-no-graphics -i "<description>", Debian package `hwloc`),
then this script hangs GPUs (PCI class 0302, NVIDIA H100 ids) below the
packages they sit on, each behind a host bridge, as a real export has them.
The files are committed; the tests only read them. Run from anywhere:

    python3 tests/topologies/make_topologies.py
"""
import os
import subprocess
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
TIB = 1 << 40

# name: (synthetic description, {package: [GPU bus numbers]})
MACHINES = {
    # 2 sockets x 56 cores, 8 GPUs, four on each socket (DGX H100 layout).
    "dgx-h100": (
        f"package:2 [numa(memory={TIB})] l3:1(size=110100480) core:56 pu:2",
        {0: [0x18, 0x2A, 0x3A, 0x5D], 1: [0x9A, 0xAB, 0xBA, 0xDB]},
    ),
    # 4 sockets x 24 cores, 2 GPUs on each socket.
    "quad-socket": (
        f"package:4 [numa(memory={TIB // 2})] l3:1(size=37748736) core:24 pu:2",
        {0: [0x17, 0x31], 1: [0x4B, 0x65], 2: [0x98, 0xB1], 3: [0xCA, 0xE3]},
    ),
    # 2 sockets, every GPU on socket 0: socket 1's cores feed none.
    "one-socket-gpus": (
        f"package:2 [numa(memory={TIB // 2})] l3:1(size=62914560) core:32 pu:2",
        {0: [0x19, 0x3B, 0x4C, 0x5E], 1: []},
    ),
}


def gpu(parent, bus, gp):
    """A host bridge holding one H100 at bus:00.0 under parent."""
    bridge = ET.SubElement(parent, "object", {
        "type": "Bridge", "gp_index": str(gp), "bridge_type": "0-1",
        "depth": "0", "bridge_pci": f"0000:[{bus:02x}-{bus:02x}]"})
    dev = ET.SubElement(bridge, "object", {
        "type": "PCIDev", "gp_index": str(gp + 1),
        "pci_busid": f"0000:{bus:02x}:00.0",
        "pci_type": "0302 [10de:2330] [10de:16c1] a1",
        "pci_link_speed": "63.000000"})
    ET.SubElement(dev, "info", {"name": "PCIVendor",
                                "value": "NVIDIA Corporation"})
    ET.SubElement(dev, "info", {"name": "PCIDevice",
                                "value": "GH100 [H100 SXM5 80GB]"})


def make(name, synthetic, gpus):
    xml = subprocess.run(["lstopo-no-graphics", "-i", synthetic, "--of",
                          "xml", "-"], check=True, capture_output=True,
                         text=True).stdout
    root = ET.fromstring(xml)
    machine = root.find("object")
    packages = [o for o in machine.iter("object")
                if o.get("type") == "Package"]
    gp = 100000
    for pkg in packages:
        for bus in gpus.get(int(pkg.get("os_index")), []):
            gpu(pkg, bus, gp)
            gp += 2
    for info in machine.findall("info"):
        if info.get("name") == "ProcessName":
            machine.remove(info)
    body = ET.tostring(root, encoding="unicode")
    path = os.path.join(HERE, name + ".xml")
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<!DOCTYPE topology SYSTEM "hwloc2.dtd">\n' + body + "\n")
    print(path)


for n, (syn, g) in MACHINES.items():
    make(n, syn, g)
