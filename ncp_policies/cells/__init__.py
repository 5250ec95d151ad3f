"""ncp_policies.cells"""
