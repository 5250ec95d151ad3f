"""ncp_policies.audit"""
