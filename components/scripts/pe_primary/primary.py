"""The services of the primary this script runs on, as one object the steps share."""

import argparse
import os
import platform

from .api import Api
from .ca import CertificateAuthority
from .classifier import Classifier
from .constants import CLASSIFIER_PORT, PUPPETDB_PORT, PUPPETSERVER_PORT
from .files import read_text
from .postgres import PostgresAllowlist
from .puppet_runs import CoalescedPrimaryRuns, Puppet
from .settings import Settings, platform_tag


class Primary:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = Settings(args.puppet)
        host = self.settings.certname
        os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
        self.ca = CertificateAuthority(
            Api(args.ca_url or f"https://{host}:{PUPPETSERVER_PORT}/puppet-ca/v1", self.settings)
        )
        self.classifier = Classifier(
            Api(args.classifier_url or f"https://{host}:{CLASSIFIER_PORT}/classifier-api", self.settings)
        )
        self.puppetdb = Api(
            args.puppetdb_url or f"https://{host}:{PUPPETDB_PORT}/pdb/query/v4", self.settings
        )
        self.puppet_runs = CoalescedPrimaryRuns(
            Puppet(args.puppet, self.settings, args.lock_timeout, args.poll_seconds), args.state_dir
        )
        self.postgres = PostgresAllowlist(args.postgresql_data_glob, args.systemctl)

    def platform(self) -> str:
        return platform_tag(read_text(self.args.os_release), self.args.machine or platform.machine())

    def state_file(self, name: str) -> str:
        return os.path.join(self.args.state_dir, name)
