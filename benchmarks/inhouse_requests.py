"""The usual in-house script, as a baseline: Python ``requests``, one file per POST, one Session.

It opens a job, sends every file of CORPUS in its own POST (auth + uploadParams + the file), and
closes the job. usage: inhouse_requests.py CORPUS URL USER PASSWORD COMPANY_HANDLE [insecure]
"""

import os
import re
import sys

import requests

NS = "http://www.scene7.com/IpsApi/xsd/2014-04-03"
OPTIONS = (
    "<uploadParams><overwrite>true</overwrite><readyForPublish>false</readyForPublish>"
    "<createMask>false</createMask><emailSetting>None</emailSetting></uploadParams>"
)


def main() -> None:
    corpus, url, user, password, company = sys.argv[1:6]
    verify: bool = not (len(sys.argv) > 6 and sys.argv[6] == "insecure")
    if not verify:  # like the curl peer: TLS without checks, against the local sink
        requests.packages.urllib3.disable_warnings()
    auth = (
        f'<authHeader xmlns="{NS}"><user>{user}</user><password>{password}</password></authHeader>'
    )
    session = requests.Session()
    session.verify = verify

    def post(params: str, files: dict | None = None) -> str:
        data = {"auth": auth, "uploadParams": params}
        answer = session.post(url, data=data, files=files, verify=verify)
        answer.raise_for_status()
        return answer.text

    opened = post(
        f'<uploadPostParam xmlns="{NS}"><companyHandle>{company}</companyHandle>'
        f"<jobName>inhouse</jobName>{OPTIONS}</uploadPostParam>"
    )
    handle = re.search(r"<jobHandle>([^<]+)</jobHandle>", opened).group(1)
    follow = (
        f'<uploadPostParam xmlns="{NS}"><companyHandle>{company}</companyHandle>'
        f"<jobHandle>{handle}</jobHandle></uploadPostParam>"
    )
    for folder, _, names in os.walk(corpus):
        for name in sorted(names):
            path = os.path.join(folder, name)
            target = os.path.relpath(path, corpus).replace(os.sep, "/")
            with open(path, "rb") as handle_file:
                post(follow, {"file1": (target, handle_file, "application/octet-stream")})
    post(follow.replace("</uploadPostParam>", "<endJob>true</endJob></uploadPostParam>"))


if __name__ == "__main__":
    main()
