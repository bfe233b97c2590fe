"""poolctl: see, drain and wait for the PE compile-master pool behind an AWS NLB (boto3).

python -m poolctl status --stack dev
"""
