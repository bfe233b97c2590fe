"""`python -m poolctl` in pe-lb's own folder; the code is components/poolctl (pe_lb.poolctl installed)."""
