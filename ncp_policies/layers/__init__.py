"""ncp_policies.layers"""
