"""pe-lb's steps on the PE primary, one module per concern, as peadm keeps one task per step.

join.py and leave.py read as PE's procedure; the others are what they use: the CA
(ca.py), the request's fields (certificate.py, der.py), the instance's proof
(identity.py, instance_identity.py, aws_certificates.py), the classifier, PuppetDB
over the API, PE-PostgreSQL's allowlist, Puppet runs, files changed under a lock.
Python 3.6 and the standard library only; it reaches the primary as one file
(components.scripts.primary_script()).
"""
