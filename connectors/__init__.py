"""One adapter per outside system (CRM, helpdesk, commerce/billing) behind a small common interface, applying
governance field mappings at the boundary.
"""
