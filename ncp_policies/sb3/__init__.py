"""ncp_policies.sb3"""
