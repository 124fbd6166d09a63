"""The capacity planner: replicas, GPUs and cost per profile for a traffic and an SLO, from the capacity atlases."""
