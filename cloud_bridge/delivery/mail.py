"""Email a copy's lookup link and access code, in Vietnamese and English."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from cloud_bridge.config import SmtpSection
from cloud_bridge.errors import DeliveryError
from cloud_bridge.store import CopyRecord

logger = logging.getLogger(__name__)


def build_message(
    settings: SmtpSection,
    to: str,
    record: CopyRecord,
    link: str,
    access_code: str,
    pdf: bytes | None,
) -> EmailMessage:
    """Return the message for one copy, with the PDF attached when given."""
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = f"Bản sao chứng thực / Certified copy {record.copy_id}"
    date = record.issued_on.strftime("%d/%m/%Y")
    message.set_content(
        "Kính gửi Quý công dân,\n\n"
        f"Bản sao chứng thực điện tử của quý vị đã được cấp ngày {date}.\n"
        f"Xem và tải bản sao tại: {link}\n"
        f"Mã truy cập: {access_code}\n\n"
        "Giữ kín mã truy cập; ai có mã này đều xem được bản sao.\n\n"
        "---\n\n"
        f"Your certified digital copy was issued on {date}.\n"
        f"View and download it at: {link}\n"
        f"Access code: {access_code}\n\n"
        "Keep the access code private; anyone who has it can see the copy.\n"
    )
    if pdf is not None:
        message.add_attachment(
            pdf,
            maintype="application",
            subtype="pdf",
            filename=f"ban-sao-{record.copy_id}.pdf",
        )
    return message


def send_message(settings: SmtpSection, message: EmailMessage) -> None:
    """Send through the configured server; DeliveryError on any failure."""
    try:
        with smtplib.SMTP(
            settings.host, settings.port, timeout=settings.timeout_s
        ) as client:
            if settings.starttls:
                client.starttls(context=ssl.create_default_context())
            if settings.user and settings.password is not None:
                client.login(settings.user, settings.password.get_secret_value())
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(
            f"cannot send mail through {settings.host}:{settings.port}: {exc}; "
            "check the delivery.smtp settings, the delivery will be retried"
        ) from exc
