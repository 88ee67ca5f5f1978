"""Files for a real RKE2 / Rancher cluster from the plan."""
