# English strings for the public (source-facing) pages.
# Every visible string of the public pages lives here; zh-Hans and zh-Hant carry the same keys.

site-name = tipbox
lang-switch-label = Language
nav-home = About this tip line
nav-submit = Submit a tip
footer-note = This page uses no JavaScript and loads nothing from other sites.

landing-title = Report what happened to you, safely
landing-intro = This tip line collects reports from people living outside China who are watched, threatened or pressured by Chinese state agents — for example through undeclared "police service stations". Your report helps human-rights researchers document these operations and protect others.
landing-who-title = Who reads your report
landing-who = Your report is encrypted on this server the moment it arrives, to the keys of a small team of human-rights reviewers. The server itself cannot read it. Reviewers open reports only on their own computers.
landing-what-title = What you can report
landing-what = Threats against your family in China, pressure to return, being followed or watched, visits or summons by officials, online harassment, detention or forced return, or a "police service station" you know of.
landing-safety-title = Stay safe while you report
landing-safety-tor = Use Tor Browser, and set its security level to "Safest" (shield icon → Settings → Safest). This site works fully at that level.
landing-safety-device = Do not submit from a work computer, a government device, or a phone that someone else controls or has inspected.
landing-safety-network = Do not submit from a network you do not trust, such as an employer's or a community centre's Wi-Fi.
landing-safety-photos = Photos and documents can contain hidden information such as the place where a photo was taken or the name of the person who wrote a document. Remove it before you upload, or take a screenshot of the photo and upload the screenshot instead.
landing-safety-receipt = After you submit, you get a receipt: a list of words. Keep it secret and safe. With it you can come back to read replies and add more. Nobody can recover it for you.
landing-start = Start a report

submit-title = Submit a tip
submit-intro = Only the message is required. Everything else is optional: give only what you are comfortable sharing.
submit-message-label = What happened?
submit-message-help = Describe what happened, who was involved, and how you were contacted. Write in any language.
submit-facts-title = Details (optional)
submit-incident-label = Type of incident
submit-incident-none = — Choose one (optional) —
incident-threats_to_family = Threats against family in China
incident-pressure_to_return = Pressure to return to China
incident-surveillance = Surveillance or being followed
incident-summons_or_visit = Summons or visit by officials
incident-online_harassment = Online harassment
incident-detention_or_forced_return = Detention or forced return
incident-police_station_sighting = A "police service station" sighting
incident-other = Other
submit-country-label = Country where it happened
submit-city-label = City
submit-when-label = When did it happen?
submit-when-help = A date or a rough time, for example "March 2026" or "last week".
submit-attachments-label = Files (optional)
submit-attachments-help = You can choose several files at once. Up to { $count } files, each at most { $size }, { $total } in total.
submit-button = Send securely
submit-encryption-note = Your report is encrypted as soon as it reaches the server.

receipt-title = Your report was received
receipt-intro = Your report is stored, encrypted to the reviewers' keys. This is your receipt:
receipt-keep = Write these words down on paper, or keep them in a password manager. Do not save them on a shared or work device and do not send them to anyone.
receipt-return = With this receipt you can come back later to read replies from the reviewers and add more information.
receipt-lost = If you lose the receipt, nobody — not even the reviewers — can recover it for you.
receipt-new = Submit another tip

paused-title = Submissions are paused
paused-body = This tip line is not accepting reports right now, because no reviewer is ready to receive them. Nothing you send now would be stored. Please try again later.

error-title = Your report was not sent
error-bad-request = The form could not be read. Please go back and try again.
error-message-missing = Please write a message: it is the only required field.
error-invalid-utf8 = Part of the form was not valid text. Please go back and try again.
error-unknown-incident = The type of incident is not one of the choices. Please choose one from the list.
error-field-too-long = One of the detail fields is too long. Please shorten it.
error-unexpected-field = The form contained a field this tip line does not know. Please use the form on this site.
error-too-large-title = Too large to send
error-message-too-large = The message is longer than { $size }. Please shorten it or attach it as a file.
error-attachment-too-large = A file is larger than { $size }, the limit for one file.
error-total-too-large = All files together are larger than { $size }, the limit for one report.
error-too-many-attachments = You can attach at most { $count } files to one report.
error-nothing-stored = Nothing from this attempt was stored.
error-internal = Something went wrong on our side and your report was not stored. Please try again in a few minutes.
error-busy = The tip line is very busy right now. Nothing was stored. Please try again in a few minutes.
error-keys-changed = The reviewers' keys changed while you were sending. Please send your report again.
error-too-slow = The connection was too slow to receive your report, so it was stopped. If you are on a slow network, try sending fewer or smaller files.
error-back = Back to the form
not-found-title = Page not found
not-found-body = There is no page at this address.

## Coming back with the receipt
nav-followup = Return with your receipt
landing-return = Already sent a report? Return with your receipt to read replies and add more.
followup-title = Return with your receipt
followup-intro = Enter the receipt you were given when you sent your report: 12 words. You will see where your report stands, read replies from the reviewers, and can add more.
followup-receipt-label = Your receipt (12 words)
followup-receipt-help = Separate the words with spaces; a Chinese receipt can also be typed without spaces. The receipt never appears in the address bar.
followup-button = Open my report
followup-error-word-count = A receipt has exactly 12 words. Please check that you entered all of them.
followup-error-unknown-word-at = Word { $position } is not a receipt word. Please check its spelling.
followup-error-did-you-mean = Perhaps you meant: { $words }.
followup-error-checksum = All the words are receipt words, but one of them is probably mistyped or out of order. Please compare each word with your receipt.
followup-error-no-match = No report matches this receipt. Please check the words and try again.
followup-error-busy = Too many people are opening reports right now. Please wait a minute and try again.
followup-error-form-expired = This form has expired. Please enter your receipt again.
followup-session-ended = You are no longer signed in: a session ends after { $minutes } minutes without activity, or when you sign out. Please enter your receipt again.
followup-nothing-to-add = Please write a message or choose a file to add.
followup-back-signin = Enter your receipt again
followup-back-case = Back to your report
error-internal-followup = Something went wrong on our side. Please try again in a few minutes.
case-title = Your report
case-status-label = Status:
case-status-received = Received. The reviewers have not started on it yet.
case-status-reviewing = Being reviewed.
case-status-closed = Closed: the reviewers have finished with this report. You can still add information.
case-added = What you added was received and stored, encrypted to the reviewers' keys.
case-replies-title = Replies from the reviewers
case-replies-none = There are no replies yet. Please come back later.
case-reply-date = Sent on { $date }
case-reply-delete = Delete this reply
case-reply-delete-confirm = Yes, delete this reply for good
case-reply-delete-unconfirmed = The reply was not deleted: tick the box beside the button to confirm, then press it again.
case-reply-delete-help = Deleting a reply removes it from this server for good. The reviewers will see that you read and deleted it.
case-reply-not-found = This reply no longer exists.
case-add-title = Add to your report
case-add-help = Add more details or files. Like your first report, everything is encrypted to the reviewers' keys before it is stored.
case-add-message-label = Message
case-add-attachments-label = Files
case-add-button = Send
case-signout = Sign out
case-signout-help = When you are done, sign out, especially on a shared device. You are also signed out after { $minutes } minutes without activity.
signedout-title = Signed out
signedout-body = You are signed out. To come back, you need your receipt.
followup-upload-session-ended = You are no longer signed in (after a while without activity, or after signing out), so this could not be added. Please enter your receipt again and send it once more.
limited-title = Too many requests
busy-title = The tip line is busy
limited-body = The tip line is receiving too many requests right now. Nothing was stored. Please wait a minute and try again.
error-disk-full = The tip line cannot store reports right now. Nothing was stored. Please try again later.

## Units of size, as most people know them (counted in 1024s)
unit-bytes = bytes
unit-kb = KB
unit-mb = MB
unit-gb = GB

## Shown under the receipt on pages whose language has no standard (BIP39) word list: ug, bo, ru, fa
receipt-english-words = Your receipt is in English words: they can be typed on any keyboard. No standard receipt word list exists in this language.
