"""The ROS side above the nodes: start node graphs, drive lifecycles, replay frames to them.

``launcher`` (the table of graphs, ``vpr-ros run``), ``lifecycle`` (configure/activate managed
nodes), ``replay`` (a DDS client publishing frames and recording matches), ``demo``,
``live_eval`` and ``bench_graph`` (end-to-end runs over DDS). Nodes are started as processes by
module name (``python -m vpr_ros.nodes.<node>``), never imported from here.
"""
